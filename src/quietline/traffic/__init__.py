"""quietline.traffic: abnormal traffic detection from call records (issue 7).

Public interface:

* ``generator.generate`` – synthetic call records with ground truth (calls.parquet, labels.csv,
  allowlist.csv), deterministic per seed.
* ``detect.detect`` – features (``features``, Ibis expressions on DuckDB or PySpark), rules with
  configurable thresholds (``rules.Thresholds``) and the learned risk score (``model``); returns
  findings with evidence, each ``review`` or ``temporary_block`` (never for allow-listed numbers).
* ``evaluation.evaluate`` / ``evaluation.train_from_dir`` – precision and recall against labels;
  versioned risk-model training.
* ``streaming.BombingDetector`` – event-time bombing alerts within 60 s of onset, bounded memory;
  sources: ``streaming.watch_file`` (file tail) and ``nats_source.watch_nats`` (JetStream).
* ``live.LiveDetectors`` – the same rules behind ``POST /v1/traffic/records``, with the state in the
  database (``traffic_stream_*`` tables) so every server worker sees every record of a carrier.

* ``actions.store_run`` / ``actions.AlertRecorder`` – keep a run's findings (``orm``: tables
  ``traffic_runs``, ``traffic_findings``), audited, and announce each finding of a caller not on an
  allow list on the change feed (``actions.TOPIC_FINDING``, payload ``actions.FindingPayload``);
  the reactions relay makes them high-risk candidates in the marks context. ``queries`` reads them
  back, always for one carrier; ``report.summary`` is what a stored run keeps for the report page.
"""
