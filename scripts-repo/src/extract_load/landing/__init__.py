"""Land: the bucket, one day's manifest as its commit point, the lease on an interval, retention.

Every extract writes here and every load reads from here; nothing in this
package knows what a record means (that is the source's contract).
"""
