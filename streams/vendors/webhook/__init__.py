"""Generic webhooks: signed records posted to the site, read from the intake queue by the worker."""
