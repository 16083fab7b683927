"""Readers (and writers) of file formats: WFDB records, Apple Watch / Apple Health CSVs, CODE
HDF5 exams and their label CSVs, the CODE-15% layout, any single recording (``recording``:
WFDB, CSV or ``.npy`` in millivolts) and TFRecord shards. Each checks what it reads and names
the file in its errors; none knows about models."""
