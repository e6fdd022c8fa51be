"""Pure enrichment functions: language identification, text preparation, named entities.

Nothing here does I/O beyond loading packaged models once; the faust agent in
``streams/stages/enrich.py`` calls these and does the Kafka side.
"""
