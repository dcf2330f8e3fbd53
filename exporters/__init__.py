"""qbank's built-in export formats, one module each (registered in the `qbank.exporters` entry-point group)."""
