"""The dashboard's views: each reads and changes only :class:`app.state.AppState`."""
