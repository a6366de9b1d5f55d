-- Demo data for the enterprise lookup service; applied at its start, idempotently.
INSERT INTO demo_opening_hours (site, weekday, opens, closes) VALUES
  ('customer-service', 1, '08:00', '20:00'), ('customer-service', 2, '08:00', '20:00'),
  ('customer-service', 3, '08:00', '20:00'), ('customer-service', 4, '08:00', '20:00'),
  ('customer-service', 5, '08:00', '20:00'), ('customer-service', 6, '09:00', '18:00'),
  ('customer-service', 7, '', '')
ON CONFLICT DO NOTHING;

INSERT INTO demo_orders (order_id, customer_id, status, carrier, expected_delivery) VALUES
  ('CMD-123456', 'cust-fr-001', 'shipped', 'Colissimo', DATE '2026-11-28'),
  ('CMD-654321', 'cust-en-001', 'preparing', 'DHL', DATE '2026-12-02'),
  ('CMD-777777', 'cust-fr-002', 'delivered', 'Chronopost', DATE '2026-11-20'),
  ('CMD-424242', 'cust-en-002', 'shipped', 'UPS', DATE '2026-11-29')
ON CONFLICT DO NOTHING;

INSERT INTO demo_accounts (customer_id, account_masked, balance_cents, currency, as_of) VALUES
  ('cust-fr-001', 'FR76 **** **** **** 4821', 123456, 'EUR', TIMESTAMPTZ '2026-11-26 08:00:00+00'),
  ('cust-en-001', 'GB29 **** **** **** 7730', 98010, 'GBP', TIMESTAMPTZ '2026-11-26 08:00:00+00'),
  ('cust-fr-002', 'FR76 **** **** **** 1180', -2550, 'EUR', TIMESTAMPTZ '2026-11-26 08:00:00+00'),
  ('cust-en-002', 'FR76 **** **** **** 9034', 500000, 'EUR', TIMESTAMPTZ '2026-11-26 08:00:00+00')
ON CONFLICT DO NOTHING;
