"""What several test modules share (fixtures live in tests/conftest.py)."""
