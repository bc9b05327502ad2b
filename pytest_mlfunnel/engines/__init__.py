"""Table engines: what answers a check's aggregates, and how.

``protocol`` (``Table``, ``Engine``, ``Agg``, the dtype vocabulary), ``expr`` (expressions over
several columns), ``dialects`` (one ``Dialect`` per SQL system), ``sql`` (the one SQL engine,
rendering through a dialect), ``frames`` (user frames through narwhals), ``spark`` (Spark SQL
in a SparkSession, through the Spark dialect) and ``connections`` (one pooled connection per
database URL). Engines know nothing of sources or checks: the
openers in ``sources/`` turn a source into an engine.
"""
