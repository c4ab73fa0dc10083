"""The web report: server-rendered pages mounted on the service under `/report`."""

from reports.web.app import create_report_app

__all__ = ["create_report_app"]
