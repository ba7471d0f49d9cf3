"""Errors whose message is a sentence a user can act on."""


class UserError(Exception):
    """Bad input or a refused request. ``str(exc)`` is shown to the user as it is."""


class PermissionDenied(UserError):
    pass
