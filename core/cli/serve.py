"""``resx serve [WORKSPACE]``: the dashboard as a server a team can use (``panel serve app`` underneath).

The options are those of ``panel serve`` that serving a campaign needs (see the README, "Serving a
campaign to a team"): where it listens (``--address``, default the loopback only, and ``--port``),
what may open a websocket to it (``--allow-websocket-origin``), how it sits behind a reverse proxy
(``--use-xheaders``, ``--prefix``), who may log in (``--basic-auth FILE`` or Panel's OAuth
providers: ``--oauth-provider``, ``--oauth-key``, ``--oauth-secret``, ``--oauth-extra-params``,
``--oauth-redirect-uri``, ``--oauth-jwt-user``, ``--oauth-encryption-key``, with
``--cookie-secret``), and ``--num-procs``. Listening beyond the loopback without authentication
is allowed (a closed lab network) but warned about: votes are then typed names, and the page
says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import subprocess
import sys
from pathlib import Path

from core.cli.common import add_command
from core.errors import ResxError

log = logging.getLogger(__name__)

#: ``resx serve`` option -> ``panel serve`` option, passed through when given.
_PASS_THROUGH = {
    "allow_websocket_origin": "--allow-websocket-origin",
    "prefix": "--prefix",
    "basic_auth": "--basic-auth",
    "cookie_secret": "--cookie-secret",
    "oauth_provider": "--oauth-provider",
    "oauth_key": "--oauth-key",
    "oauth_secret": "--oauth-secret",
    "oauth_extra_params": "--oauth-extra-params",
    "oauth_redirect_uri": "--oauth-redirect-uri",
    "oauth_jwt_user": "--oauth-jwt-user",
    "oauth_encryption_key": "--oauth-encryption-key",
    "num_procs": "--num-procs",
}


def app_dir() -> Path:
    """The folder of the installed dashboard package ``app`` (found, not imported: core never imports app)."""
    spec = importlib.util.find_spec("app")
    if spec is None or not spec.submodule_search_locations:
        raise ResxError("the dashboard package `app` is not installed with this Residual Explorer")
    return Path(spec.submodule_search_locations[0])


def is_loopback(address: str | None) -> bool:
    """Whether listening on ``address`` reaches this machine only (``127.0.0.1``, ``::1``, ``localhost``).

    Parameters
    ----------
    address : str or None
        None or ``""`` means every interface.
    """
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def serve_command(workspace: str | Path | None = None, port: int = 5006, extra: list[str] | None = None,
                  address: str = "127.0.0.1", behind_proxy: bool = False) -> list[str]:
    """The ``panel serve`` command line that serves ``workspace``.

    Parameters
    ----------
    workspace : path, optional
        Workspace folder; default :func:`core.workspace.workspace.default_workspace`.
    port : int
        TCP port of the server.
    extra : list of str, optional
        More ``panel serve`` options (e.g. ``["--basic-auth", "users.json"]``), placed before ``--args``.
    address : str
        Address to listen on (``0.0.0.0``: every interface). The dashboard is told it too
        (``--args --address``): without authentication, lead actions are open only on the loopback.
    behind_proxy : bool
        Served through a reverse proxy (``--use-xheaders``): the dashboard is told it is reachable
        from anywhere (``--args --address proxy``), whatever address the server listens on.

    Returns
    -------
    list of str
    """
    from core.workspace.locations import default_workspace

    ws = Path(workspace) if workspace else default_workspace()
    return [sys.executable, "-m", "panel", "serve", str(app_dir()), "--port", str(int(port)), "--address", address,
            *(extra or []), "--args", "--address", "proxy" if behind_proxy else address, "--workspace", str(ws.resolve())]


def panel_options(args: argparse.Namespace) -> list[str]:
    """The ``panel serve`` options that ``resx serve``'s arguments ask for (before ``--args``)."""
    out: list[str] = []
    for name, flag in _PASS_THROUGH.items():
        value = getattr(args, name, None)
        if value is None or (name == "num_procs" and value == 1):
            continue
        for v in value if isinstance(value, list) else [value]:
            out += [flag, str(v)]
    if getattr(args, "use_xheaders", False):
        out.append("--use-xheaders")
    return out


def authenticated(args: argparse.Namespace) -> bool:
    """Whether the server will authenticate its users (basic auth or OAuth)."""
    return bool(getattr(args, "basic_auth", None) or getattr(args, "oauth_provider", None))


def check_options(args: argparse.Namespace) -> list[str]:
    """Refuse what cannot work; return the warnings to print.

    Raises
    ------
    ResxError
        A basic-auth file that does not exist; OAuth without its key, secret or cookie secret.
    """
    warnings = []
    if args.basic_auth and not Path(args.basic_auth).is_file():
        raise ResxError(f"--basic-auth {args.basic_auth}: no such file (a JSON object {{login: password}}, "
                        "or one password for everyone)")
    if args.oauth_provider and not (args.oauth_key and args.oauth_secret):
        raise ResxError("--oauth-provider needs --oauth-key and --oauth-secret (from the provider's app settings)")
    if authenticated(args) and not args.cookie_secret:
        raise ResxError("authentication needs --cookie-secret (a long random string; it signs the login cookie, "
                        "so keep it the same across restarts and processes)")
    if not is_loopback(args.address) and not authenticated(args):
        warnings.append(f"listening on {args.address or 'every interface'} without authentication: anyone who "
                        "reaches this port can vote under any name (recorded as unauthenticated, no expert "
                        "override), and lead actions are off. Use --basic-auth FILE or --oauth-provider, "
                        "behind TLS (see the README, 'Serving a campaign to a team').")
    if args.num_procs not in (None, 1) and not args.cookie_secret and authenticated(args):
        warnings.append("--num-procs with authentication: every process must share --cookie-secret")
    return warnings


def no_lead_warning(workspace: str | Path, args: argparse.Namespace) -> str | None:
    """The warning for a server with authentication whose workspace names no lead (``app.leads`` empty).

    With a login, only the logins in ``app.leads`` have the lead role; when it is empty nobody
    can start a retrain, change the active run or export in blind mode (each is refused with a
    message naming ``app.leads``).

    Parameters
    ----------
    workspace : str or Path
        The workspace folder (its ``config.toml`` is read).
    args : argparse.Namespace
        ``resx serve``'s options.

    Returns
    -------
    str or None
        None without authentication, without a readable configuration, or with a lead named.
    """
    from core.workspace.config import load_config
    from core.workspace.workspace import Workspace

    path = Path(workspace) / Workspace.CONFIG
    if not authenticated(args) or not path.is_file():
        return None
    try:
        leads = load_config(path).config.get("app", {}).get("leads") or []
    except Exception as exc:  # noqa: BLE001 - the page reports a bad config; this is only a warning
        log.debug("cannot read %s: %s", path, exc)
        return None
    if leads:
        return None
    return (f"app.leads in {path} is empty: with authentication nobody has the lead role, so retraining, "
            "changing the active run and the blind-mode export are refused. Add the lead's login "
            "(app.leads = [\"login\"]) and restart.")


HELP = "Serve the dashboard to a team (panel serve app, with auth, roles and proxy options)."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "serve", HELP, run, workspace=False)
    p.add_argument("workspace", nargs="?", default=None, metavar="WORKSPACE")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                   help="a host the browser may open the page from (repeat; needed beyond localhost, e.g. "
                   "the public name of a reverse proxy)")
    p.add_argument("--use-xheaders", action="store_true",
                   help="trust X-Forwarded-* headers (behind a reverse proxy that terminates TLS)")
    p.add_argument("--prefix", default=None, help="URL prefix when a proxy serves it under a path (e.g. /resx)")
    p.add_argument("--basic-auth", default=None, metavar="FILE",
                   help="log in with a login and a password: FILE is JSON {login: password}; the login is the "
                   "inspector, and roles come from the workspace config (votes.experts, app.leads)")
    p.add_argument("--cookie-secret", default=None, help="secret that signs the login cookie (needed with auth)")
    oauth = p.add_argument_group("OAuth (passed to panel serve; see Panel's authentication guide)")
    oauth.add_argument("--oauth-provider", default=None, help="e.g. github, google, azure, gitlab, okta, generic")
    oauth.add_argument("--oauth-key", default=None)
    oauth.add_argument("--oauth-secret", default=None)
    oauth.add_argument("--oauth-extra-params", default=None, help="JSON of provider options (e.g. a tenant)")
    oauth.add_argument("--oauth-redirect-uri", default=None)
    oauth.add_argument("--oauth-jwt-user", default=None, help="the claim that names the user")
    oauth.add_argument("--oauth-encryption-key", default=None)
    p.add_argument("--num-procs", type=int, default=1, metavar="N",
                   help="server processes sharing the port (0: one per core); each holds one copy of the "
                   "map data for its sessions, and they share the vote store (SQLite in WAL mode, or PostgreSQL)")


def run(args: argparse.Namespace) -> int:
    """Handler of ``resx serve``: run the Panel server until interrupted; returns its exit status."""
    procs = getattr(args, "num_procs", 1)
    if procs is not None and procs < 0:
        raise ResxError(f"--num-procs must be 0 (one per core) or more, not {procs}")
    for warning in check_options(args):
        log.warning("%s", warning)
        print(f"warning: {warning}", file=sys.stderr)
    cmd = serve_command(args.workspace, args.port, panel_options(args), address=args.address,
                        behind_proxy=args.use_xheaders)
    ws = cmd[cmd.index("--workspace") + 1]
    if not Path(ws).exists():
        print(f"warning: no workspace at {ws}; the page will say how to build one (`resx demo {ws}`).",
              file=sys.stderr)
    elif (warning := no_lead_warning(ws, args)) is not None:
        log.warning("%s", warning)
        print(f"warning: {warning}", file=sys.stderr)
    host = "localhost" if is_loopback(args.address) else args.address
    print(f"Serving {ws} at http://{host}:{args.port}{args.prefix or ''}/app (Ctrl-C to stop)")
    log.info("%s", " ".join("***" if i and cmd[i - 1] in ("--cookie-secret", "--oauth-secret") else c
                            for i, c in enumerate(cmd)))
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130
