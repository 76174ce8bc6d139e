"""DynamoDB: the table definitions, the records stored in them, and the only code
that reads or writes them."""
