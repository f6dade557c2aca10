"""HTTP routes: thin adapters from requests to channel parsing and the dispatcher."""
