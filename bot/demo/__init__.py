"""`chanwatch demo`: the real daemon against a simulated Telegram, over a sample day compressed to a minute.

`scenario` holds the fictional channels and their day, `timeline` seeds a simulator World and plays
the day on its clock, `render` shows what the bot sent as terminal text, and `runner` wires the
daemon (`bot.service.Service`) to it all and prints the summary.
"""
