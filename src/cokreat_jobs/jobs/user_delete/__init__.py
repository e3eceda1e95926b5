"""user-delete: deletes a user's personal information in coKreat when the user is deleted in Sunbird ED.

`job.py` wires it; `logic` holds the decision table (which events, which call, how the answer is read);
`checks` its configuration checks.
"""
