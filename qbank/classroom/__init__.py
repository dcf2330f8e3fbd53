"""The classroom: what students answered, read back from where it lives (an LMS report, a paper exam's CSV), tied to
the variants they were given, regraded by meaning and analysed item by item, variant by variant and mistake by
mistake."""
