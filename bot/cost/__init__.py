"""Money: the price table and its files, cost maths, budgets, the usage report, its Slack
view, the `/usage` command and the `python -m bot usage` CLI.

May import `bot.store` and `bot.errors` only; never the engine or a surface (the `/usage`
command is handed an `is_admin` function by the composition root).
"""
