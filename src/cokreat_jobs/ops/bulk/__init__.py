"""Bulk upload of contents from a CSV through the import API (`cokreat-jobs import upload`) and the live
status of an import (`cokreat-jobs import status`)."""
