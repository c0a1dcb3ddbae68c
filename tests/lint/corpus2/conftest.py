"""The corpus is lint input, not tests to run: pytest collects nothing here."""

collect_ignore_glob = ["*.py", "*/*.py"]
