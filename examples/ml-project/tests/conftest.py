import os
import sys

# The tests import the project's modules from its root.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
