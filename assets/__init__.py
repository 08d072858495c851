"""Static files of the dashboard (CSS, logo), installed with the package.

Read them with ``importlib.resources.files("assets")`` (or :func:`app.asset`), never by a path
beside the source, so that an installed package finds them as a checkout does.
"""
