"""The dashboard (Bokeh directory app served by `panel serve app`). Work in progress."""
import panel as pn

pn.panel("# Residual Explorer\nThe dashboard is being built.").servable()
