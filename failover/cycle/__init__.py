"""One cycle in four steps: read (``read.py``), plan (``failover/rules.py``), act (``act.py``), settle
(``settle.py``); ``failover/engine.py`` runs them per transformation."""
