"""Protobuf's wire format read without a schema: the one reader of ONNX models and caffemodels here."""


def protobuf_varint(data, pos):
    """(value, next position) of the varint at data[pos]; ValueError when it is cut short or too long."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError('truncated protobuf varint')
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError('malformed protobuf varint')


def protobuf_fields(data, start=0, end=None):
    """(field number, wire type, value) of each field of the protobuf message data[start:end], read
    without a schema (ONNX models, caffemodels): an int for varints, a (begin, end) span into `data` for
    length-delimited fields (so large blobs are never copied), the raw bytes of fixed-size ones.
    ValueError for a wire type protobuf does not use or a field that runs past the message."""
    pos, end = start, len(data) if end is None else end
    while pos < end:
        key, pos = protobuf_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = protobuf_varint(data, pos)
        elif wire_type == 2:
            length, pos = protobuf_varint(data, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, pos = bytes(data[pos:pos + size]), pos + size
        else:
            raise ValueError('unsupported protobuf wire type %d' % wire_type)
        if pos > end:
            raise ValueError('truncated protobuf message: field %d runs past its end' % field)
        yield field, wire_type, value
