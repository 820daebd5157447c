"""The Slack surface: listeners, the responder that renders engine events as edited
messages, the streaming relay, the write scheduler and its rate budgets, message views,
mrkdwn, Slack text, admins, and closing the Slack messages of an interrupted reply.

A surface is a thin adapter: it translates Slack's events into questions for `bot.engine`
and the engine's events into Slack messages. May import `bot.engine`, `bot.cost`,
`bot.store` (claims and memory resets), `bot.errors`, `bot.metrics`; never `bot.http`, and
never `anthropic` (only `bot.claude` speaks to Claude).
"""
