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
