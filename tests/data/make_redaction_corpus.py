"""Regenerates redaction_corpus.jsonl (run from the repository root). Edit the cases here, not the JSONL."""

import json

P = []  # (text, expected)


def pos(t, e, note=""):
    P.append({"text": t, "expected": e, "kind": "positive", "note": note})


def neg(t, note=""):
    P.append({"text": t, "expected": t, "kind": "negative", "note": note})


def miss(t, e, note):
    P.append({"text": t, "expected": e, "kind": "known_miss", "note": note})


# emails
pos("Customer jane.doe@example.com could not log in", "Customer [email] could not log in")
pos("Reply went to JOHN_SMITH+orders@mail.example.co.uk instead", "Reply went to [email] instead")
pos("emails: a.b@x.io, c-d@sub.domain.org", "emails: [email], [email]")
pos("<maria@firma.de> says the invoice is wrong", "<[email]> says the invoice is wrong")
miss(
    "Contact: o'brien@example.ie",
    "Contact: [email]",
    "apostrophe in the local part: only the part after it is redacted (o'[email]), so o' leaks",
)
pos("mail from 123456@numbers.example.net bounced", "mail from [email] bounced")
# phones international
pos("Customer called from +1 415-555-2671 twice", "Customer called from [phone] twice")
pos("his number is +44 20 7946 0958", "his number is [phone]")
pos("Rückruf an +49 30 901820 erbeten", "Rückruf an [phone] erbeten")
pos("call back +33 1 42 68 53 00 please", "call back [phone] please")
pos("WhatsApp +91 98765 43210", "WhatsApp [phone]")
pos("+61 2 9374 4000 is the Sydney office of the client", "[phone] is the Sydney office of the client")
pos("tel. +31 20 624 1111", "tel. [phone]")
pos("reach her on 0049 89 1234567", "reach her on [phone]")
pos("+55 11 98765-4321 (Brazil) complained", "[phone] (Brazil) complained")
pos("Number +34 912 345 678 keeps getting SMS spam", "Number [phone] keeps getting SMS spam")
pos("+39 06 6982 1234 said the parcel never arrived", "[phone] said the parcel never arrived")
pos("Call +14155552671 asap", "Call [phone] asap")
# phones local
pos("Customer phone (415) 555-2671 was shown to another user", "Customer phone [phone] was shown to another user")
pos("call me at 415-555-2671", "call me at [phone]")
pos("UK customer on 020 7946 0958 waited 40 minutes", "UK customer on [phone] waited 40 minutes")
pos("mobile 07700 900123 never got the code", "mobile [phone] never got the code")
pos("Festnetz 030 901820, bitte zurückrufen", "Festnetz [phone], bitte zurückrufen")
pos("phone: 4155552671", "phone: [phone]")
pos("two numbers: +1 415 555 2671 and +44 20 7946 0958", "two numbers: [phone] and [phone]")
pos("tel 01 42 68 53 00 (Paris)", "tel [phone] (Paris)")
# cards
pos("card 4111 1111 1111 1111 was charged twice", "card [card] was charged twice")
pos("card 4111-1111-1111-1111 declined", "card [card] declined")
pos("paid with 4111111111111111", "paid with [card]")
pos("Amex 3782 822463 10005 refused", "Amex [card] refused")
pos("Mastercard 5555 5555 5555 4444 exp 12/27", "Mastercard [card] exp 12/27")
pos("Discover 6011-1111-1111-1117", "Discover [card]")
pos("JCB 3530111333300000 in the chat log", "JCB [card] in the chat log")
pos("Diners 3056 930902 5904", "Diners [card]")
pos("cards 4012888888881881 and 5105 1051 0510 5100 both failed", "cards [card] and [card] both failed")
pos("Visa 4111 1111 1111 1111, CVV given too", "Visa [card], CVV given too")
# IBAN
pos("refund to DE89 3704 0044 0532 0130 00 please", "refund to [iban] please")
pos("IBAN DE89370400440532013000 BIC COBADEFFXXX", "IBAN [iban] BIC COBADEFFXXX")
pos("GB82 WEST 1234 5698 7654 32 is the account", "[iban] is the account")
pos("iban: gb82west12345698765432", "iban: [iban]")
pos("NL91ABNA0417164300 got the refund twice", "[iban] got the refund twice")
pos("FR14 2004 1010 0505 0001 3M02 606", "[iban]")
pos("ES91 2100 0418 4502 0005 1332 for the transfer", "[iban] for the transfer")
pos("CH9300762011623852957.", "[iban].")
pos("IT60X0542811101000000123456 and BE68539007547034", "[iban] and [iban]")
# ssn, ip
pos("SSN 123-45-6789 was in the ticket", "SSN [ssn] was in the ticket")
pos("login from 203.0.113.42 blocked", "login from [ip] blocked")
pos("IPs 192.168.1.10, 10.0.0.255 were rate limited", "IPs [ip], [ip] were rate limited")
# mixed
pos("jane@example.com, +1 415 555 2671, card 4111 1111 1111 1111", "[email], [phone], card [card]")
pos(
    "Refund 49.99 EUR to DE89 3704 0044 0532 0130 00 for order 123456 (jane@example.com)",
    "Refund 49.99 EUR to [iban] for order 123456 ([email])",
)
pos(
    "On 2024-03-15 at 10:30 she called from +44 20 7946 0958 about v3.14.2",
    "On 2024-03-15 at 10:30 she called from [phone] about v3.14.2",
)
# negatives
neg("Export to CSV fails since version 3.14.2")
neg("Released 2024-03-15, broke on 15/03/2024 and 03/15/2024")
neg("Checkout costs $1,299.00 instead of $999.99")
neg("The meeting was 10:30-11:45 CET")
neg("Customer has been with us for 7 months")
neg("3 customers today, 12 yesterday")
neg("Product code SKU-4821-XL is out of stock")
neg("Order #123456 shipped late")
neg("order 4839201938 was never delivered", "10-digit order number without phone word")
neg("ticket 20240315-0042 reopened")
neg("app version 1.2.3.4 crashes on start", "four-part version with 'version' before it")
neg("v10.0.0.1 fixed the export")
neg("Price went from 19,99 € to 24,99 €")
neg("Error code 0x80070005 when saving")
neg("Battery lasts 2-3 hours instead of 10")
neg("We shipped 1500 units in Q3 2024")
neg("Model XR-2000 overheats above 35°C")
neg("page 12 of 48 in the manual is wrong")
neg("Invoice INV-2024-000123 total 1.234,56 EUR")
neg("Tracking number 1Z999AA10123456784 stuck in transit")
neg("Password reset link expired after 15 minutes")
neg("ISO 8601 timestamps like 2024-03-15T10:30:00Z are shown raw")
neg("Postcode 10115 Berlin cannot be entered")
neg("Rating dropped from 4.5 to 3.9 stars")
neg("Discount code SAVE20 gives 20% off")
neg("Between 9 and 17 o'clock the line is busy")
neg("GDPR article 17 request from a customer")
neg("Firmware 2.0.11 bricked 3 devices")
neg("Build 2024.03.15 is slower")
neg("100% of users on Android 14 see this")
neg("Screen resolution 1920x1080 cuts off the button")
neg("Call volume went from 120 to 450 per day")
neg("Ref DE-2024-118 needs a reply")
neg("Refund of 1 234 567 EUR total this quarter")
neg("user id 58213 cannot see invoices")
neg("The list shows 2024 2025 2026 as years")
neg("Temperature 22.5 degrees in the warehouse")
neg("Step 1: open settings. Step 2: tap Export.")
neg("Shipment weight 12.5 kg, 3 boxes")
neg("HTTP 502 from /api/v2/export after 30 s")
# known misses
miss("write to jane at example dot com", "write to [email]", "obfuscated email")
miss("card 4111 1111 1111 1112 (mistyped)", "card [card] (mistyped)", "fails Luhn: not recognisably a card")
miss(
    "Chinese customer 138 0013 8000 called",
    "Chinese customer [phone] called",
    "national format of a region outside PHONE_REGIONS",
)
with open("tests/data/redaction_corpus.jsonl", "w") as f:
    for c in P:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
print(len(P))
