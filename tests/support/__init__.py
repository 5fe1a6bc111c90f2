"""The one home for what tests share: helpers here, fixtures in tests/conftest.py.

A test module imports from tests.support (and pytest gives it fixtures); it never imports another
test module or conftest.py. `make lint` refuses such imports.
"""
