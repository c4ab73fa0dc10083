"""What applications send: the usage event's schema (`schema`: its fields, among them the one list of measures
from which the stored columns, the rollups, the API's answers and the reconciler's logged measures are derived;
validation and decoding) and the normalizers of providers' usage objects. Pure."""
