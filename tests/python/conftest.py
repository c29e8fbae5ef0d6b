"""conftest: the Python tests run against the build tree: python/ on the import
path, and libferry from $BUILD (default build) unless FERRY_LIBRARY is set."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("FERRY_LIBRARY", str(REPO / os.environ.get("BUILD", "build") / "libferry.so"))
# Child processes (the queue's consumers) import the same package.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(REPO / "python"))
