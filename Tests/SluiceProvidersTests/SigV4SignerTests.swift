import Foundation
import Testing
@testable import SluiceProviders

/// Against AWS's published SigV4 test suite (credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
/// us-east-1, service "service"), then Bedrock-shaped requests cross-checked with botocore.
@Suite struct SigV4SignerTests {
    let date = Date(timeIntervalSince1970: 1_440_938_160)
    let signer = SigV4Signer(
        credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), region: "us-east-1", service: "service")

    func authorization(_ headers: [(String, String)]) -> String? { headers.first { $0.0 == "authorization" }?.1 }

    @Test func getVanilla() {
        let out = signer.sign(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com")], body: [UInt8](), date: date)
        #expect(out.first { $0.0 == "x-amz-date" }?.1 == "20150830T123600Z")
        #expect(
            authorization(out)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func postVanilla() {
        let out = signer.sign(method: "POST", path: "/", headers: [("Host", "example.amazonaws.com")], body: [UInt8](), date: date)
        #expect(authorization(out)?.hasSuffix("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") == true)
    }

    @Test func getVanillaQueryOrderKeyCase() {
        let out = signer.sign(
            method: "GET", path: "/", query: "Param2=value2&Param1=value1", headers: [("Host", "example.amazonaws.com")], body: [UInt8](), date: date)
        #expect(authorization(out)?.hasSuffix("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") == true)
    }

    @Test func postXWWWFormURLEncoded() {
        let out = signer.sign(
            method: "POST", path: "/", headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com")],
            body: Array("Param1=value1".utf8), date: date)
        #expect(
            authorization(out)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
    }

    @Test func sessionTokenIsSentAndSigned() {
        let withToken = SigV4Signer(
            credentials: .init(
                accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                sessionToken: "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf1942"), region: "us-east-1", service: "service")
        let out = withToken.sign(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com")], body: [UInt8](), date: date)
        #expect(out.first { $0.0 == "x-amz-security-token" }?.1 == "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf1942")
        #expect(authorization(out)?.contains("SignedHeaders=host;x-amz-date;x-amz-security-token") == true)
        #expect(authorization(out)?.hasSuffix("Signature=71140d89abc41d96fa1e2824287bc26078efe321c47a59127c8762c691acb866") == true)
    }

    /// A Bedrock call whose model id has a `:` (sent as %3A, signed as %253A), as botocore signs it.
    @Test func bedrockConverseWithAColonInTheModelID() {
        let bedrock = SigV4Signer(credentials: signer.credentials, region: "us-east-1", service: "bedrock")
        let path = BedrockProvider.path("anthropic.claude-3-haiku-20240307-v1:0", "converse")
        #expect(path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
        let out = bedrock.sign(
            method: "POST", path: path, headers: [("host", "bedrock-runtime.us-east-1.amazonaws.com"), ("content-type", "application/json")],
            body: Array(#"{"messages":[]}"#.utf8), date: date)
        #expect(
            authorization(out)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=dba7f2f77cc33808be655f27b8ebf1d1b1d77751fc96dad0bd71e020cb07c442")
    }

    @Test func credentialsComeFromTheEnvironment() {
        #expect(SigV4Signer.Credentials.fromEnvironment([:]) == nil)
        #expect(SigV4Signer.Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a"]) == nil)
        let c = SigV4Signer.Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": ""])
        #expect(c == .init(accessKeyID: "a", secretAccessKey: "b", sessionToken: nil))
    }
}
