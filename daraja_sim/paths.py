"""Daraja's endpoint paths, as the portal pages name them (the simulator's own copy, not the client's)."""

OAUTH = "/oauth/v1/generate"
STK_PUSH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY = "/mpesa/stkpushquery/v1/query"
B2C = "/mpesa/b2c/v3/paymentrequest"
B2C_V1 = "/mpesa/b2c/v1/paymentrequest"
B2POCHI = "/mpesa/b2pochi/v1/paymentrequest"
B2B = "/mpesa/b2b/v1/paymentrequest"
STATUS = "/mpesa/transactionstatus/v1/query"
BALANCE = "/mpesa/accountbalance/v1/query"
REVERSAL = "/mpesa/reversal/v1/request"
C2B_REGISTER_V1 = "/mpesa/c2b/v1/registerurl"
C2B_REGISTER_V2 = "/mpesa/c2b/v2/registerurl"
C2B_SIMULATE = "/mpesa/c2b/v1/simulate"
PULL_REGISTER = "/pulltransactions/v1/register"
PULL_QUERY = "/pulltransactions/v1/query"

PAYOUTS = (B2C, B2C_V1, B2POCHI, B2B)
