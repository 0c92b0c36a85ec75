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

Findings are not stored here: turning them into high-risk candidates is the marks package's job.
"""
