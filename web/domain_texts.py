"""The domain's fixed error texts that the admin shows, so that staff read them in their own
language too. `scheduler/` knows nothing of Flask: its texts are listed here (N_ marks them
for extraction) and looked up when shown; a text with a value in it stays as the domain wrote it.
"""

from __future__ import annotations

from flask_babel import gettext


def N_(text: str) -> str:
    return text


TEXTS = (
    N_("the customer opted out of SMS: answer by email, or call them"),
    N_("the customer has no phone number"),
    N_("the customer opted out of email"),
    N_("the customer has no email address"),
    N_("the reply is empty"),
    N_("an email needs a subject"),
    N_("the note is empty"),
    N_("say what is given, in words the customer would understand"),
    N_("describe it in at most 500 characters"),
    N_("a discount is a percentage: at most 100"),
    N_("a discount needs a value of at least 0.01"),
    N_("a refund needs a value of at least 0.01"),
    N_("a replacement takes no value: say what is given in words"),
    N_("a other takes no value: say what is given in words"),
    N_("the case is resolved: a remedy belongs to an open case"),
    N_("only an owner can approve a remedy above the staff limits"),
    N_("a token needs a name (who or what will use it)"),
    N_("a cadence needs a name"),
    N_("at most 100 characters"),
    N_("a cadence needs at least one step"),
    N_("a step cannot come before the sale"),
    N_("a step after a score needs one, such as score >= 9"),
    N_("lower-case letters, digits and dashes, such as day7-check-in"),
    N_("days must be a number, such as 7 or -14"),
    N_("hours must be a number, such as 7 or -14"),
    N_("the default cadence stays active: make another default"),
    N_("the file is empty"),
    N_("the file has a header but no sales"),
)


def translated(error: Exception | str) -> str:
    """The text in the reader's language, part by part ("a; b" is two problems)."""
    return "; ".join(gettext(part) for part in str(error).split("; "))
