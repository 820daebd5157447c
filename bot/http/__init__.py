"""The HTTP surface: `POST /chat`, Claude over plain HTTP as JSON or a text stream.

A thin adapter over `bot.engine`, like the Slack surface. May import `bot.engine`,
`bot.cost`, `bot.store`, `bot.errors`, `bot.metrics`; never `bot.slack`.
"""
