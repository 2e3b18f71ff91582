"""Run the Tavus callback collector: ``python collector.py [--db PATH] [--port N] ...``.

The same as ``tavus-analytics serve``; ``python collector.py --help`` lists the options.
"""

from tavus_analytics.cli import serve

if __name__ == "__main__":
    serve(prog_name="collector.py")
