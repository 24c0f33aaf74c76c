"""The one error type of a bad config (or a bad model name, CLI value or input that a config
could have named), at the bottom of the package so that every layer, the net families
included, raises the same type that the command line turns into one line."""


class ConfigError(ValueError):
    """A config value that is not allowed; the message names the key."""
