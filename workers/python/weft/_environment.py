"""Where the handlers' own packages come from (docs/handlers-python-ruby.md,
"Your packages"). Called by ``_bridge.load_handlers`` before any handler
file is imported.

A virtualenv (``WEFT_PYTHON_VENV``, else ``VIRTUAL_ENV``) is added the way
``site`` adds a site directory, so its ``.pth`` files run (editable installs,
namespace packages). The embedded interpreter's own site-packages stay on the
path too, as in a venv made with ``--system-site-packages``: a compiled
package installed for that Python (numpy from the system) still imports. On a
clash the virtualenv wins: its entries go before the interpreter's
site-packages (the standard library still comes first, as in any venv).
"""

import os
import site
import sys

_SETTINGS = "WEFT_PYTHON_VENV or VIRTUAL_ENV"


class VirtualenvError(Exception):
    """The virtualenv the worker was told to use cannot serve this interpreter."""


def use_virtualenv(venv):
    """Puts the site-packages of the virtualenv at ``venv`` on sys.path,
    ahead of the interpreter's own site-packages; returns that directory."""
    venv = os.path.abspath(venv)
    if not os.path.isdir(venv):
        raise VirtualenvError(
            f"the virtualenv {venv} ({_SETTINGS}) does not exist; create it with "
            f"`python{_version()} -m venv {venv}`, or unset the setting"
        )
    cfg = os.path.join(venv, "pyvenv.cfg")
    if not os.path.isfile(cfg):
        raise VirtualenvError(
            f"{venv} ({_SETTINGS}) is not a virtualenv: it has no pyvenv.cfg; "
            f"create one with `python{_version()} -m venv {venv}`"
        )
    made_by = _made_by(cfg)
    if made_by is not None and made_by[:2] != sys.version_info[:2]:
        raise VirtualenvError(
            f"the virtualenv {venv} ({_SETTINGS}) was made by Python {'.'.join(map(str, made_by))}, but this worker "
            f"runs Python {sys.version.split()[0]} ({sys.base_prefix}); packages built for another version may not import. "
            f"Make the virtualenv with `python{_version()} -m venv`, or point the worker at that Python"
        )
    site_packages = os.path.join(venv, "lib", f"python{_version()}", "site-packages")
    if not os.path.isdir(site_packages):
        raise VirtualenvError(
            f"the virtualenv {venv} ({_SETTINGS}) has no {site_packages}; "
            f"recreate it with `python{_version()} -m venv {venv}`"
        )
    if site_packages not in sys.path:
        _add_before_interpreter_site(site_packages)
    return site_packages


def _version():
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _made_by(cfg):
    """(major, minor, ...) of the Python that made the venv, from pyvenv.cfg's
    ``version`` (venv) or ``version_info`` (virtualenv); None if it says neither."""
    with open(cfg, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep and key.strip() in ("version", "version_info"):
                parts = value.strip().split(".")
                try:
                    return tuple(int(p) for p in parts[:3])
                except ValueError:
                    return None
    return None


def _add_before_interpreter_site(site_packages):
    """site.addsitedir (which runs the .pth files), then moves what it added
    in front of the first of the interpreter's own site directories."""
    before = list(sys.path)
    known = set(before)
    site.addsitedir(site_packages)
    added = [p for p in sys.path if p not in known]
    rest = [p for p in sys.path if p in known]
    own = {_norm(p) for p in _interpreter_site_dirs()}
    at = next((i for i, p in enumerate(rest) if _norm(p) in own), len(rest))
    sys.path[:] = rest[:at] + added + rest[at:]


def _interpreter_site_dirs():
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return dirs


def _norm(path):
    return os.path.normcase(os.path.realpath(path))


def missing_module_hint(exc, venv):
    """The text added to a ModuleNotFoundError raised while loading handlers:
    where Python looked, and how to make the module importable."""
    name = (exc.name or "").split(".")[0] or "the module"
    where = f"the virtualenv {venv}" if venv else "a virtualenv (set WEFT_PYTHON_VENV or VIRTUAL_ENV to it)"
    return (
        f"; Python {sys.version.split()[0]} searched sys.path: {sys.path}. "
        f"Install the package that provides {name!r} into {where}, "
        f"or into the site-packages of {sys.base_prefix}"
    )
