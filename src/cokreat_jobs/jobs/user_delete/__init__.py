"""user-delete: deletes a user's personal information in coKreat when the user is deleted in Sunbird ED."""
