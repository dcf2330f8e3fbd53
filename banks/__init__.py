"""Built-in question banks (TOML data files); `qbank list` shows them."""
