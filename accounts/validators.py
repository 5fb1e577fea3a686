"""Username rules: what a new account may be called (registration, the admin, imports).

A username is shown everywhere and is the owner key of every Mongo document, so it is kept to a plain,
printable charset: letters and digits of any script, and `. _ - @ +` inside; it starts with a letter, digit or
underscore (no leading dot), never holds `..`, a path separator, NUL or any control character, does not end
with a dot, and is already in Unicode NFKC form (no look-alike compatibility characters). Storage keys never
contain usernames (they are built from ids), so an older account with an odd name still works everywhere.
"""

import re
import unicodedata

USERNAME_MIN_LENGTH = 2
USERNAME_MAX_LENGTH = 64
_ALLOWED = re.compile(r"\w[\w.@+-]*")


def username_problems(username: str) -> list[str]:
    """Why `username` is not acceptable for a new account (empty when it is)."""
    if not username:
        return ["This field is required."]
    problems = []
    if not USERNAME_MIN_LENGTH <= len(username) <= USERNAME_MAX_LENGTH:
        problems.append(f"Use {USERNAME_MIN_LENGTH} to {USERNAME_MAX_LENGTH} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in username):
        problems.append("Control and invisible characters are not allowed.")
    elif "/" in username or "\\" in username:
        problems.append("Path separators (/ and \\) are not allowed.")
    elif username.startswith("."):
        problems.append("A username cannot start with a dot.")
    elif ".." in username or username.endswith("."):
        problems.append("A username cannot contain '..' or end with a dot.")
    elif not _ALLOWED.fullmatch(username):
        problems.append("Use letters, digits and . _ - @ + only, starting with a letter, digit or underscore.")
    elif unicodedata.normalize("NFKC", username) != username:
        problems.append("Use plain characters (the username is not in Unicode NFKC form).")
    return problems
