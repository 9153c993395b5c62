"""Source code that makes TensorFlow and TFDS unimportable in a child process, as on a JAX-only GPU host.

Prepend :data:`HIDE_TENSORFLOW` to a ``python -c`` script, or write it as ``sitecustomize.py`` into a folder
on the child's ``PYTHONPATH`` (then every Python process it starts is covered too).
"""

HIDE_TENSORFLOW = """
import importlib.machinery
import json
import sys

# TensorFlow and TFDS are invisible, as if not installed (imports fail, find_spec returns None).
path_finder = importlib.machinery.PathFinder.find_spec

def find_spec(cls, name, path=None, target=None):
    if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
        return None
    return path_finder(name, path, target)

importlib.machinery.PathFinder.find_spec = classmethod(find_spec)
"""

BREAK_TENSORFLOW = """
import importlib.abc
import importlib.machinery
import json
import sys

# TensorFlow, TFDS and Keras look installed (find_spec finds them) but importing them fails loudly: code
# that checks its inputs before it imports them exits on the input; code that imports them first fails.
class RefusingLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise RuntimeError(f"{module.__name__} was imported")

path_finder = importlib.machinery.PathFinder.find_spec

def find_spec(cls, name, path=None, target=None):
    if name.split(".")[0] in ("tensorflow", "tensorflow_datasets", "keras"):
        return importlib.machinery.ModuleSpec(name, RefusingLoader())
    return path_finder(name, path, target)

importlib.machinery.PathFinder.find_spec = classmethod(find_spec)
"""
