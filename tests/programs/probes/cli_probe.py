"""Prints what python sets up for the main module: compared between `python` and lockwatch."""
import sys

import __main__

print("argv", sys.argv)
print("path0", sys.path[0])
print("name", __name__)
print("file", __file__)
print("spec", getattr(__spec__, "name", None))
print("package", repr(__package__))
print("main is this module", __main__.__dict__ is globals())
