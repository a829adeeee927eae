import SluiceCore
import Testing
@testable import SluiceGuardrails

/// The types found in `text`, with the matched text (tests only; the product never returns values).
func found(_ text: String, types: Set<PIIType> = Set(PIIType.allCases)) -> [(PIIType, String)] {
    let t = ScalarText(text)
    return PIIScanner(types: types).scan(t).map { ($0.type, t.slice($0.start, $0.end)) }
}

func has(_ text: String, _ type: PIIType, _ value: String) -> Bool {
    found(text).contains { $0.0 == type && $0.1 == value }
}

@Suite struct PIIDetectorTests {
    @Test func emails() {
        #expect(has("write to jane.doe+news@mail.example.co.uk today", .email, "jane.doe+news@mail.example.co.uk"))
        #expect(has("Kontakt: jürgen@bücher.de.", .email, "jürgen@bücher.de"))
        #expect(found("@home and user@localhost and a@b.c", types: [.email]).isEmpty)
    }

    @Test func cardsPassLuhnOnly() {
        #expect(has("card 4111 1111 1111 1111 exp 12/29", .creditCard, "4111 1111 1111 1111"))
        #expect(has("amex 3782-822463-10005", .creditCard, "3782-822463-10005"))
        #expect(has("5555555555554444", .creditCard, "5555555555554444"))
        // Fails Luhn, an order id, a timestamp in milliseconds.
        #expect(found("4111 1111 1111 1112", types: [.creditCard]).isEmpty)
        #expect(found("order 1234567890123456", types: [.creditCard]).isEmpty)
        #expect(found("ts=1732451234567", types: [.creditCard]).isEmpty)
        // Luhn-valid by chance, outside every network's prefix and length: a reference, not a card.
        for run in ["5912345678901237", "6812345678901236", "2812345678901235", "3712345678901234", "ref 5912 3456 7890 1237"] {
            #expect(found(run, types: [.creditCard]).isEmpty, "\(run)")
        }
        #expect(has("Mir 2200 1234 5678 9019", .creditCard, "2200 1234 5678 9019"))
    }

    @Test func ssnNeedsValidParts() {
        #expect(has("SSN: 123-45-6789", .usSSN, "123-45-6789"))
        #expect(found("000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000", types: [.usSSN]).isEmpty)
        #expect(has("social security number 123456789", .usSSN, "123456789"))
        #expect(found("invoice 123456789", types: [.usSSN]).isEmpty)
    }

    @Test func ibanPassesMod97() {
        #expect(has("pay to GB82 WEST 1234 5698 7654 32 thanks", .iban, "GB82 WEST 1234 5698 7654 32"))
        #expect(has("DE89370400440532013000", .iban, "DE89370400440532013000"))
        #expect(found("GB82 WEST 1234 5698 7654 33", types: [.iban]).isEmpty)
    }

    @Test func ipAddresses() {
        #expect(has("from 192.168.0.17.", .ipAddress, "192.168.0.17"))
        #expect(has("v6 2001:db8:85a3::8a2e:370:7334 ok", .ipAddress, "2001:db8:85a3::8a2e:370:7334"))
        #expect(has("fe80:0000:0000:0000:0202:b3ff:fe1e:8329", .ipAddress, "fe80:0000:0000:0000:0202:b3ff:fe1e:8329"))
        // Version strings, out-of-range octets, times.
        #expect(found("version 1.2.3.4.5, 256.1.1.1, at 12:30:45", types: [.ipAddress]).isEmpty)
    }

    @Test func phonesInGroupsOrWithACue() {
        #expect(has("call +1 (415) 555-0132 now", .phone, "+1 (415) 555-0132"))
        #expect(has("office 020 7946 0958", .phone, "020 7946 0958"))
        #expect(has("(978)645-9740x11144 mobile", .phone, "(978)645-9740x11144"))
        #expect(has("phone: 4155550132", .phone, "4155550132"))
        // Dates, years, order numbers, prices, version numbers.
        #expect(found("on 2023-01-04 14:56:41", types: [.phone]).isEmpty)
        #expect(found("between 2019 2020 2021", types: [.phone]).isEmpty)
        #expect(found("order #12345678 for $1234567", types: [.phone]).isEmpty)
        #expect(found("build 10.0.19041.1234", types: [.phone]).isEmpty)
    }

    /// International layouts are found; grouped digit runs in no phone layout (without a "+",
    /// brackets or a cue) are not: order, reference and serial numbers, counts.
    @Test func phoneLayoutsAndLookAlikes() {
        #expect(has("Numéro : +33 1 23 45 67 89", .phone, "+33 1 23 45 67 89"))
        #expect(has("+61 2 9876 5432 (Sydney office)", .phone, "+61 2 9876 5432"))
        #expect(has("WhatsApp +55 11 91234-5678", .phone, "+55 11 91234-5678"))
        #expect(has("or 415 555 0132 after six", .phone, "415 555 0132"))
        #expect(has("or 1-800-555-0199 toll free", .phone, "1-800-555-0199"))
        #expect(has("ring 0161 496 0000 today", .phone, "0161 496 0000"))
        for text in ["Order 2023-555-0199 shipped", "We sold 1 234 567 units", "Ref: 44-2079-4609", "Serial no. 12 34 56 78 90", "batch 123 456 7890"] {
            #expect(found(text, types: [.phone]).isEmpty, "\(text)")
        }
    }

    @Test func secrets() {
        #expect(has("aws AKIAIOSFODNN7EXAMPLE", .secret, "AKIAIOSFODNN7EXAMPLE"))
        #expect(has("key=AKIAIOSFODNN7EXAMPLE", .secret, "AKIAIOSFODNN7EXAMPLE"))
        #expect(has("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", .secret, "ghp_abcdefghijklmnopqrstuvwxyz0123456789"))
        #expect(has("OPENAI_API_KEY=sk-proj-4f9Qx7Lm2Zp8Rt1Vw3Yb6Nc0", .secret, "sk-proj-4f9Qx7Lm2Zp8Rt1Vw3Yb6Nc0"))
        #expect(has("xoxb-123456789012-abcdefABCDEF", .secret, "xoxb-123456789012-abcdefABCDEF"))
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        #expect(has("Bearer \(jwt)", .secret, jwt))
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
        #expect(has("here:\n\(pem)\nbye", .secret, pem))
        #expect(has("db_password = Tr0ub4dor&3", .secret, "Tr0ub4dor&3"))
        #expect(has("api_key: \"9f8e7d6c5b4a39281706f5e4d3c2b1a0\"", .secret, "9f8e7d6c5b4a39281706f5e4d3c2b1a0"))
        // Words after key=, a monkey, a task that asks for a key.
        #expect(found("key=value sort_key: name monkey=banana; ask-for-the-key", types: [.secret]).isEmpty)
    }

    @Test func contextualTypes() {
        #expect(has("I was born on March 3, 1990 in Ohio", .dateOfBirth, "March 3, 1990"))
        #expect(has("DOB: 03/23/1940", .dateOfBirth, "03/23/1940"))
        #expect(found("the meeting is on 03/23/2024", types: [.dateOfBirth]).isEmpty)
        #expect(has("ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500 asap", .streetAddress, "1600 Pennsylvania Avenue NW, Washington, DC 20500"))
        #expect(has("at 221 Baker Street, Apt 4B, Springfield, IL 62704.", .streetAddress, "221 Baker Street, Apt 4B, Springfield, IL 62704"))
        #expect(has("Hello, my name is Donald van der Voet.", .person, "Donald van der Voet"))
        #expect(has("Dear Dr. Ana Souza,", .person, "Ana Souza"))
        // Cues beyond ASCII, in either case where ASCII letters differ.
        #expect(has("Ich heiße Anna Schmidt und wohne in Köln.", .person, "Anna Schmidt"))
        #expect(has("ICH HEIßE Jonas Weber.", .person, "Jonas Weber"))
        #expect(has("Hola, me llamo Lucía Pérez.", .person, "Lucía Pérez"))
        #expect(found("I am Going home. This is The plan.", types: [.person]).isEmpty)
    }

    @Test func offsetsAreCodePoints() {
        // Emoji and accents before the value: offsets count code points, as Python does.
        let text = "Ünïcödé 👩‍💻 mail: a.b@example.org"
        let f = PIIScanner().scan(ScalarText(text)).first { $0.type == .email }!
        #expect(f.start == 18 && f.end == 33)
    }

    @Test func overlapsKeepTheMoreSpecificType() {
        // A card number is not also reported as a phone number.
        let types = found("4111-1111-1111-1111").map(\.0)
        #expect(types == [.creditCard])
    }
}
