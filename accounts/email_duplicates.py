"""Email addresses that more than one account holds, compared case-insensitively (empty ones ignored).

Used by the `email_duplicates` command (an operator's report) and by the migration that makes email unique,
which refuses to apply while any exist: accounts are never merged silently."""

from collections import defaultdict


def email_duplicates(user_model) -> dict[str, list[str]]:
    """{lower-cased address: [usernames]} for every address held by two or more users; `user_model` is the
    User model or the migration's historical one."""
    holders: dict[str, list[str]] = defaultdict(list)
    for username, email in user_model.objects.exclude(email__isnull=True).values_list("username", "email"):
        address = (email or "").strip().lower()
        if address:
            holders[address].append(username)
    return {address: sorted(names) for address, names in sorted(holders.items()) if len(names) > 1}
