"""Results to a self-contained plotly HTML report."""

from netsim.report.html import write_report

__all__ = ["write_report"]
