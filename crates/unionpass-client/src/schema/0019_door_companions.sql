-- the door's count of people reads, after every scan, the companions of the sign-ups that have
-- some: this index holds just those, so the count does not read every sign-up of the event
CREATE INDEX scanner_signups_companions ON scanner_signups(event_id, member_id, companions)
    WHERE companions > 0;
