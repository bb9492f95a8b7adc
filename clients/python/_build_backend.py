"""A PEP 517 build backend in the standard library only, so `pip install ./clients/python`
needs no network (pip would otherwise fetch setuptools into its isolated build env).

It builds one pure-Python wheel holding ringcast_client.py (and ringcast_torch.py, the optional
PyTorch adapter, which imports torch itself); the version is the module's
``__version__``. Only what pip needs for a regular install: build_wheel (and build_sdist
for `pip download`/`python -m build`)."""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

NAME = "ringcast_client"
DIST = "ringcast-client"
HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.join(HERE, NAME + ".py")
EXTRA_MODULES = ("ringcast_torch.py",)


def _version():
    with open(MODULE, encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("no __version__ in %s" % MODULE)
    return m.group(1)


def _metadata(version):
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (
        "Metadata-Version: 2.1\n"
        "Name: %s\n"
        "Version: %s\n"
        "Summary: Stream live training telemetry from a Python trainer to ringcast (standard library only)\n"
        "License: Apache-2.0\n"
        "Requires-Python: >=3.8\n"
        "Description-Content-Type: text/markdown\n\n%s" % (DIST, version, readme)
    )


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version = _version()
    info = "%s-%s.dist-info" % (NAME, version)
    with open(MODULE, "rb") as f:
        module = f.read()
    files = [(NAME + ".py", module)]
    for extra in EXTRA_MODULES:
        with open(os.path.join(HERE, extra), "rb") as f:
            files.append((extra, f.read()))
    files += [
        (info + "/METADATA", _metadata(version).encode("utf-8")),
        (info + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: ringcast _build_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    record = "\n".join(_record_line(p, d) for p, d in files) + "\n%s/RECORD,,\n" % info
    name = "%s-%s-py3-none-any.whl" % (NAME, version)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as whl:
        for path, data in files:
            whl.writestr(path, data)
        whl.writestr(info + "/RECORD", record)
    return name


def build_sdist(sdist_directory, config_settings=None):
    version = _version()
    base = "%s-%s" % (NAME, version)
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        for f in ("pyproject.toml", "_build_backend.py", NAME + ".py", "README.md") + EXTRA_MODULES:
            tar.add(os.path.join(HERE, f), arcname="%s/%s" % (base, f))
        pkg_info = _metadata(version).encode("utf-8")
        ti = tarfile.TarInfo("%s/PKG-INFO" % base)
        ti.size = len(pkg_info)
        tar.addfile(ti, io.BytesIO(pkg_info))
    return name
