"""The API gateway: public routes to functions, each behind an access policy."""
