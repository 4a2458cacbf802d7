"""Who invited whom into a group: the first inviter a shopper came through, never themselves."""
