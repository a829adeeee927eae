import Foundation
import NIOCore
import SluiceCore
import Testing
@testable import SluiceProviders

@Suite struct AWSEventStreamTests {
    func bytes(_ b: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: b) }

    /// AWS's published event-stream vectors (aws-c-event-stream): no headers, one string header, an int32 header.
    @Test func decodesThePublishedVectors() throws {
        var decoder = AWSEventStreamDecoder()
        decoder.append(bytes([0, 0, 0, 0x1d, 0, 0, 0, 0, 0xfd, 0x52, 0x8c, 0x5a] + Array("{'foo':'bar'}".utf8) + [0xc3, 0x65, 0x39, 0x36]))
        let plain = try #require(try decoder.next())
        #expect(plain.headers.isEmpty && String(buffer: plain.payload) == "{'foo':'bar'}")
        decoder.append(
            bytes(
                [0, 0, 0, 0x3d, 0, 0, 0, 0x20, 0x07, 0xfd, 0x83, 0x96, 0x0c] + Array("content-type".utf8) + [0x07, 0x00, 0x10]
                    + Array("application/json{'foo':'bar'}".utf8) + [0x8d, 0x9c, 0x08, 0xb1]))
        let typed = try #require(try decoder.next())
        #expect(typed.headers == ["content-type": "application/json"] && String(buffer: typed.payload) == "{'foo':'bar'}")
        decoder.append(bytes([0, 0, 0, 0x1d, 0, 0, 0, 0x0d, 0x83, 0xe3, 0xf0, 0xe7, 0x07] + Array("integer".utf8) + [0x04, 0xff, 0xff, 0xff, 0xff, 0x8b, 0x8e, 0x12, 0xeb]))
        let integer = try #require(try decoder.next())
        #expect(integer.headers.isEmpty && integer.payload.readableBytes == 0)
        #expect(try decoder.next() == nil && !decoder.hasPartialMessage)
    }

    @Test func waitsForWholeMessagesAndRefusesBadChecksums() throws {
        let whole: [UInt8] = [0, 0, 0, 0x1d, 0, 0, 0, 0, 0xfd, 0x52, 0x8c, 0x5a] + Array("{'foo':'bar'}".utf8) + [0xc3, 0x65, 0x39, 0x36]
        var decoder = AWSEventStreamDecoder()
        for byte in whole.dropLast() {
            decoder.append(bytes([byte]))
            #expect(try decoder.next() == nil)
        }
        #expect(decoder.hasPartialMessage)
        decoder.append(bytes([whole.last!]))
        #expect(try decoder.next() != nil)

        var corrupt = whole
        corrupt[14] ^= 0x01
        var bad = AWSEventStreamDecoder()
        bad.append(bytes(corrupt))
        #expect(throws: SluiceError.self) { try bad.next() }
        var badPrelude = AWSEventStreamDecoder()
        var prelude = whole
        prelude[3] = 0x1e
        badPrelude.append(bytes(prelude))
        #expect(throws: SluiceError.self) { try badPrelude.next() }
    }
}
