"""The app's side of sync/: the /sync/v1 endpoints, pushing to the upstream and pulling its
configuration, sync status, and the instance / upstream / sync commands."""
