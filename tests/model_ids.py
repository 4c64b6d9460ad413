"""The model ids the tests use, in one place."""

NOVA = "amazon.nova-canvas-v1:0"
TITAN_V1 = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:0"
ULTRA = "stability.stable-image-ultra-v1:0"
CORE_1 = "stability.stable-image-core-v1:1"
ULTRA_1 = "stability.stable-image-ultra-v1:1"

# The same model named by a cross-region profile id and by ARNs.
NOVA_ALIASES = [
    "us.amazon.nova-canvas-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-canvas-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-canvas-v1:0",
]
