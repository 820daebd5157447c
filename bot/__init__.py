"""Claude in Slack: a bot that streams Claude's answers into Slack threads."""
